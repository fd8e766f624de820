"""AMQP 1.0 transport: the listener, CBS and the IoT Hub nodes mapped onto the hub core."""
