"""The running hub: its listeners started and closed as one, the CONNECT proxy, TLS
certificates, the loop watchdog, configuration, demo data and the ``hub`` command."""
