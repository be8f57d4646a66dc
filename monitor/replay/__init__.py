"""``parcel-monitor replay``: the real engine on a simulated clock, answered by a scenario."""
