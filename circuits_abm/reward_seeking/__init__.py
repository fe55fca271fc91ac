"""The behavioural-selection model of seed 004: when does reward seeking win?"""
