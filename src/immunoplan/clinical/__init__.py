"""immunoplan.clinical"""
