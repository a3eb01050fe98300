//! Packet building and parsing for raw-socket probes. OWNER: lead.
