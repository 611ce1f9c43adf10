"""core: what every lesson uses; imports none of the other areas."""
