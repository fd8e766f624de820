"""The device endpoint over MQTT 3.1.1: a listener and one link per connection."""
