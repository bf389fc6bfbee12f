"""Reports drawn for their readers: text, terminal, JSON, Markdown, HTML, JUnit, pcap export."""
