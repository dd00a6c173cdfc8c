"""Models of the reference recipes in PyTorch, shared by the benchmark scripts."""


def paper_mlp(torch, dtype=None):
    """The paper's MNIST MLP: bias-free ReLU 784-196-196-196-10, PyTorch's default
    initialisation, then every parameter multiplied by 8 (the large initialisation that
    delays generalisation)."""
    nn = torch.nn
    sizes = [784, 196, 196, 196, 10]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=False))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    if dtype is not None:
        model = model.to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)
    return model
