"""The sans-I/O decision core shared by the sync and async transports."""
