# main.py: meter application 1.0.0
import time
from lib import meter, ota
from OTA_VERSION import VERSION

print("meter firmware app", VERSION)
while True:
    meter.read_register(None)
    time.sleep(meter.READ_INTERVAL_S)
