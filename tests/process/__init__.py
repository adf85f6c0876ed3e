"""Real `gateway serve` processes: started, signalled, killed, spoken to over sockets."""
