"""immunoplan: allergen immunotherapy, drug desensitization and omalizumab planning for allergy teams.

immunoplan supports clinical decisions; it does not make them. Every dose it shows carries its inputs,
the rule or table version behind it, and any warning.
"""

__version__ = "0.1.0"
