"""publish stage: the durable outbox, the paho link, `MqttSink`, commands and central command.

    from edge_agent.publish.publisher import MqttSink
    sink = MqttSink.from_config(cfg, clock).start(); sink.emit(event, media); sink.close(5)

Topics and payloads: docs/mqtt.md.
"""
