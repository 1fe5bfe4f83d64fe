"""PseudoLabeler component: teacher scores -> soft/hard pseudo-labels in Beam."""
