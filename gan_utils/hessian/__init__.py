"""hessian: Hessian spectra by Lanczos and NU-GAN, lesson 06."""
