"""toy: the 1-D and 2-D toy problems of lessons 01, 02 and 06."""
