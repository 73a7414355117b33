"""Real pretrained vision models (classifier, detector, text reader) and grounded captions from what they find."""
