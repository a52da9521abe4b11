"""publish stage: the durable outbox and its pump, the paho link, `MqttSink` (events) with its
state publisher and command worker, commands and central command.

    from edge_agent.publish.publisher import MqttSink
    sink = MqttSink.from_config(cfg, clock).start(); sink.emit(event, media); sink.close(5)

Topics and payloads: docs/mqtt.md.
"""
