"""The chapter's questionnaire, with short model answers in our own words.

The answers follow the data as the book loads it: a grayscale MNIST image is (28, 28) uint8, 0 is
black (the background) and 255 is white (the strokes); the book's pictures use a grey colour map
that draws high values dark, which is why its digits look black on white.
"""

from __future__ import annotations

QUESTIONS: tuple[tuple[str, str], ...] = (
    ("How is a grayscale image represented on a computer? How about a color image?",
     "As a grid of numbers, one per pixel, for its brightness: in MNIST as the book loads it, (28, 28) uint8 "
     "values where 0 is black (the background) and 255 is white (the strokes of the digit). A color image has "
     "three such grids, red, green and blue: a rank-3 tensor, (height, width, 3) as PIL and NumPy give it."),
    ("How are the files and folders in the MNIST_SAMPLE dataset structured? Why?",
     "train/ and valid/, each with a folder per label, 3/ and 7/, of PNG files. The label is the folder's "
     "name, so no separate label file is needed, and the validation images are kept apart from the training "
     "images so the model is judged on digits it never trained on."),
    ("Explain how the \"pixel similarity\" approach to classifying digits works.",
     "Average all the training 3s pixel by pixel into an \"ideal\" 3, and the 7s into an ideal 7. A new image "
     "is called a 3 if it is closer to the ideal 3 than to the ideal 7, measuring closeness by the mean "
     "absolute difference of the pixels (or RMSE). There is nothing to learn beyond the two averages."),
    ("What is a list comprehension? Create one now that selects odd numbers from a list and doubles them.",
     "An expression that builds a list from another iterable, with an optional filter, in one line: "
     "[2*o for o in a if o % 2 == 1]."),
    ("What is a \"rank-3 tensor\"?",
     "A tensor with three axes, such as a stack of images, (number of images, rows, columns)."),
    ("What is the difference between tensor rank and shape? How do you get the rank from the shape?",
     "The shape is the size of each axis, e.g. (6131, 28, 28); the rank is how many axes there are, 3. "
     "The rank is the length of the shape: len(t.shape), also t.ndim."),
    ("What are RMSE and L1 norm?",
     "Two ways to measure how far apart two sets of numbers are. L1 (mean absolute difference) is the mean "
     "of |a - b|; RMSE (root mean squared error) is the square root of the mean of (a - b)**2. RMSE "
     "punishes big differences more than L1 does and small ones less."),
    ("How can you apply a calculation on thousands of numbers at once, many thousands of times faster than "
     "a Python loop?",
     "Write it as operations on whole arrays or tensors (NumPy, PyTorch), with broadcasting where shapes "
     "differ: the loop then runs in optimized C, or on the GPU, not in Python."),
    ("Create a 3x3 tensor or array containing the numbers from 1 to 9. Double it. Select the bottom-right "
     "four numbers.",
     "tns = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) * 2; tns[1:, 1:] gives tensor([[10, 12], [16, 18]]): "
     "rows 1-2 and columns 1-2. (tns[1:] would keep all three columns, and tns[1:][1:] is the last row.)"),
    ("What is broadcasting?",
     "When two tensors of different ranks or shapes meet in an operation, PyTorch treats the smaller one as "
     "if it were repeated along the missing (or size-1) axes, without copying it: (1010, 28, 28) minus "
     "(28, 28) subtracts the ideal digit from each of the 1,010 images."),
    ("Are metrics generally calculated using the training set, or the validation set? Why?",
     "The validation set: a metric should say how the model does on data it has not seen. On the training "
     "set a model can look good by memorizing its examples (overfitting)."),
    ("What is SGD?",
     "Stochastic gradient descent: again and again, take a random mini-batch, compute the loss, compute its "
     "gradient with respect to every weight, and move each weight a small step (learning rate x gradient) "
     "the other way, downhill."),
    ("Why does SGD use mini-batches?",
     "One item at a time gives a noisy gradient and wastes the hardware's parallelism; the whole dataset "
     "for every step is slow and needs too much memory. A mini-batch of a few dozen to a few hundred "
     "items gives a useful gradient quickly, and runs well on a GPU."),
    ("What are the seven steps in SGD for machine learning?",
     "1 initialize the weights, 2 predict, 3 compute the loss, 4 compute the gradients, 5 step the weights, "
     "6 go back to 2 and repeat, 7 stop (when the model is good enough or the time is up)."),
    ("How do we initialize the weights in a model?",
     "With random numbers (e.g. normal, times a small std: init_params), not zeros, so that different "
     "units start different and can learn different things."),
    ("What is \"loss\"?",
     "A number, computed from the predictions and the targets, that is lower when the predictions are "
     "better and changes smoothly with the weights: the thing SGD makes smaller, following its gradient."),
    ("Why can't we always use a high learning rate?",
     "The steps overshoot the minimum. A bit too high and the loss bounces from side to side and takes "
     "long to settle; much too high and every overshoot lands further up than the last, so the loss "
     "diverges (grows at every step). On x**2 the step is x <- x(1 - 2 lr): lr 1.1 multiplies x by -1.2."),
    ("What is a \"gradient\"?",
     "The derivative of the loss with respect to a weight: how much, and in which direction, the loss "
     "changes when that weight changes a little. All of them together point uphill."),
    ("Do you need to know how to calculate gradients yourself?",
     "No: PyTorch computes them (requires_grad_(), then loss.backward()). You need to know what they mean."),
    ("Why can't we use accuracy as a loss function?",
     "Accuracy changes only when a prediction crosses the threshold, so a small change of the weights "
     "almost never changes it: its gradient is zero almost everywhere (and undefined at the jumps), "
     "which tells SGD nothing about which way to move."),
    ("Draw the sigmoid function. What is special about its shape?",
     "sigmoid(x) = 1 / (1 + exp(-x)): an S-shaped curve that always lies between 0 and 1, rises smoothly, is "
     "steepest at 0 (slope 0.25) and flattens for large |x|. It turns any prediction into a number between "
     "0 and 1, which mnist_loss needs."),
    ("What is the difference between a loss function and a metric?",
     "The loss is for the optimizer: it must have a useful gradient, and it drives training. A metric is "
     "for people, to judge the model (accuracy, error rate); it need not have a gradient at all."),
    ("What is the function to calculate new weights using a learning rate?",
     "The optimizer's step: new weight = weight - learning rate x gradient, w -= lr * w.grad "
     "(p.data -= p.grad * lr in the book's BasicOptim)."),
    ("What does the DataLoader class do?",
     "It takes a collection (a Dataset of (x, y) tuples) and gives it back in mini-batches, shuffled into "
     "a new order every epoch if asked, each batch collated into tensors: (xb, yb)."),
    ("Write pseudocode showing the basic steps taken in each epoch for SGD.",
     "for xb, yb in dl: preds = model(xb); loss = loss_func(preds, yb); loss.backward(); "
     "for p in params: p.data -= p.grad * lr; p.grad.zero_()"),
    ("Create a function that, if passed two arguments [1,2,3,4] and 'abcd', returns "
     "[(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')]. What is special about that output data structure?",
     "def f(a, b): return list(zip(a, b)). It is a list of tuples (input, label): exactly what a Dataset "
     "is, something that gives an (x, y) tuple for an index."),
    ("What does view do in PyTorch?",
     "It gives the same data with a new shape, without copying; -1 means \"whatever size fits\": "
     "stacked.view(-1, 28*28) turns (N, 28, 28) into (N, 784)."),
    ("What are the \"bias\" parameters in a neural network? Why do we need them?",
     "A number added after the weighted sum, x @ w + b. Without it the output for an all-zero input is "
     "always 0 (the line must pass through the origin); the bias lets the model shift its output."),
    ("What does the @ operator do in Python?",
     "Matrix multiplication (it calls __matmul__): (N, 784) @ (784, 1) gives (N, 1)."),
    ("What does the backward method do?",
     "From a (scalar) loss, it computes the gradient with respect to every tensor with requires_grad that "
     "the loss was computed from, and adds it to that tensor's .grad (backpropagation)."),
    ("Why do we have to zero the gradients?",
     "backward() adds the new gradient to what is already in .grad; without zeroing, every step would use "
     "the sum of all the earlier gradients too."),
    ("What information do we have to pass to Learner?",
     "The DataLoaders (training and validation), the model, the optimizer function (opt_func, e.g. SGD), "
     "the loss function and, optionally, the metrics to print."),
    ("Show Python or pseudocode for the basic steps of a training loop.",
     "for epoch in range(epochs): for xb, yb in train_dl: loss = loss_func(model(xb), yb); loss.backward(); "
     "opt.step(); opt.zero_grad(). Then, with no gradients, the metric over valid_dl."),
    ("What is \"ReLU\"? Draw a plot of it for values from -2 to +2.",
     "Rectified linear unit, max(x, 0): negative numbers become 0, positive ones stay as they are. From -2 "
     "to 0 the plot is flat at 0; from 0 to 2 it is the line y = x."),
    ("What is an \"activation function\"?",
     "The nonlinear function (ReLU, sigmoid) applied between linear layers. Without it, any stack of linear "
     "layers is just one linear layer."),
    ("What's the difference between F.relu and nn.ReLU?",
     "Same computation: F.relu is a function you call on a tensor; nn.ReLU is a module (a layer object) "
     "that calls it, so it can sit in nn.Sequential."),
    ("The universal approximation theorem shows that any function can be approximated as closely as needed "
     "using just one nonlinearity. So why do we normally use more?",
     "One nonlinearity may need an enormous layer to get there. Deeper models reach the same accuracy with "
     "far fewer parameters: they train faster, use less memory and, in practice, work better."),
)  # fmt: skip
