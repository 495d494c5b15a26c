"""The mechanics of training that the loop owns: the update engine, devices, many processes, diagnostics."""
