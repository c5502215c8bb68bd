"""The judging stage: timing, phrase matching, rules, re-checking against the audio, scoring."""
