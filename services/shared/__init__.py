"""What every context shares: settings, errors, clock, telemetry, and the store and bus adapters."""
