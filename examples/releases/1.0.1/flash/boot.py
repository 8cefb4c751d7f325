# boot.py: runs on every boot before main.py
import pycom
pycom.heartbeat(False)
