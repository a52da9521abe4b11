"""Operations: what the box tells its supervisor (systemd, a container engine) about how it is doing."""
