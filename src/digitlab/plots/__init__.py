"""Figures for the chapter's ideas (`chapter`) and for training runs (`training`); all PNG, all headless."""
