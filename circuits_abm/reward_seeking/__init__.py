"""The behavioural-selection model of reward seeking: when does reward seeking win?"""
