# meter.py: reads the register and queues LoRaWAN uplinks
READ_INTERVAL_S = 600

def read_register(uart):
    uart.write(b"/?!\r\n")
    return uart.readline()
