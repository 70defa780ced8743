"""What to do with each element: PS3.15 Annex E (the Basic Profile and its options) as package
data, and the project's declarative policy rules layered on top of it."""
