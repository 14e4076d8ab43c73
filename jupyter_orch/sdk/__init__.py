"""The SDK: the HTTP client and its resources, used from kernels, terminals and runs."""
