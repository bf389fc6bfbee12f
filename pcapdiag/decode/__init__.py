"""Link layers to IP to TCP, UDP and ICMP: one record in, one typed packet out."""
