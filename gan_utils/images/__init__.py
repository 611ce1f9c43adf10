"""images: MNIST digits and colour images, lessons 03-07."""
