"""immunoplan.services"""
