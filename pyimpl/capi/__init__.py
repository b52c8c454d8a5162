"""Python side of the C ABI: config parsing, runtime sessions, the loop thread that fills C stream queues."""
