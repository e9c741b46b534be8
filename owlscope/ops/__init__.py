"""Operating Owlscope: Prometheus metrics, structured logs, backups and transfers."""
