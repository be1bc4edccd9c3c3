"""Loopback peers that behave like the real batteries (Modbus servers, a Fleet-API-like HTTP server)."""
