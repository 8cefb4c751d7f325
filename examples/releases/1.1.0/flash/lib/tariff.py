# tariff.py: time-of-use tariff tables
PEAK = (7, 22)
