"""immunoplan.analysis"""
