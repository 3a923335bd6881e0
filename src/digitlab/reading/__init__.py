"""Reading a photo: an image to MNIST's 28x28, its ink components, cuts between touching digits, a
number's digits in order, and choosing among readings. Pure image code: no model here."""
