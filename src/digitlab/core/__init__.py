"""What every layer may use and that knows nothing of digits: the command line's names and defaults,
durable writes, where a command may write, progress and start-up clocks, the thread policy's readings
of the machine, and whether we run in Jupyter."""
