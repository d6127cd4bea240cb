"""immunoplan.web"""
