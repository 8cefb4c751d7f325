# ota.py: the Pycom OTA device library entry point (unchanged in the field)
from network import WLAN

class WiFiOTA:
    def __init__(self, ssid, password, ip, port):
        self.ssid = ssid
        self.password = password
        self.ip = ip
        self.port = port
