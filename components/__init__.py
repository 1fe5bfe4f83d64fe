"""TFX components of the SSD ranker pipeline (one folder per component)."""
