"""immunoplan.registry"""
