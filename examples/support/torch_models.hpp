// SPDX-License-Identifier: Apache-2.0
// The libtorch trainer's models for 28x28 grey images and 10 classes (--model cnn|resnet):
//   cnn     conv(1->8, 5x5) bn relu pool, conv(8->16, 5x5) bn relu pool, fc(256->64) relu,
//           fc(64->10): 12 parameter tensors, 20,570 parameters;
//   resnet  a small ResNet: a 3x3 stem of 16 channels, three basic residual blocks of 16, 32 and
//           64 channels (stride 1, 2, 2; 1x1 projections where the shape changes), global
//           average pooling, fc(64->10): 29 parameter tensors, 77,754 parameters, a deeper
//           model for the rows where the paper's direction depends on the model.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <torch/torch.h>

namespace gradcomp::examples {

/// An image classifier: logits of a batch of [N, 1, 28, 28] images.
struct classifier : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

struct small_cnn : classifier {
  small_cnn()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 5)))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(8))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 5)))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(16))),
        fc1(register_module("fc1", torch::nn::Linear(256, 64))),
        fc2(register_module("fc2", torch::nn::Linear(64, 10))) {}
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
    x = torch::max_pool2d(torch::relu(bn2(conv2(x))), 2);
    return fc2(torch::relu(fc1(x.flatten(1))));
  }
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Linear fc1, fc2;
};

/// conv3x3 bn relu conv3x3 bn, plus the input (projected by a 1x1 conv and bn where the shape
/// changes), relu.
struct basic_block : torch::nn::Module {
  basic_block(std::int64_t in, std::int64_t out, std::int64_t stride)
      : conv1(register_module(
            "conv1",
            torch::nn::Conv2d(
                torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(out))),
        conv2(register_module(
            "conv2",
            torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1).bias(false)))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out) {
      projection = register_module(
          "projection",
          torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      projection_bn = register_module("projection_bn", torch::nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    const torch::Tensor y = bn2(conv2(torch::relu(bn1(conv1(x)))));
    return torch::relu(y + (projection.is_empty() ? x : projection_bn(projection(x))));
  }
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Conv2d projection{nullptr};
  torch::nn::BatchNorm2d projection_bn{nullptr};
};

struct small_resnet : classifier {
  small_resnet()
      : stem(register_module(
            "stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1).bias(false)))),
        stem_bn(register_module("stem_bn", torch::nn::BatchNorm2d(16))),
        block1(register_module("block1", std::make_shared<basic_block>(16, 16, 1))),
        block2(register_module("block2", std::make_shared<basic_block>(16, 32, 2))),
        block3(register_module("block3", std::make_shared<basic_block>(32, 64, 2))),
        fc(register_module("fc", torch::nn::Linear(64, 10))) {}
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(stem_bn(stem(x)));
    x = block3->forward(block2->forward(block1->forward(x)));
    return fc(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::nn::Conv2d stem;
  torch::nn::BatchNorm2d stem_bn;
  std::shared_ptr<basic_block> block1, block2, block3;
  torch::nn::Linear fc;
};

/// The model `name` names (cnn or resnet).
inline std::shared_ptr<classifier> make_classifier(const std::string& name) {
  if (name == "cnn") {
    return std::make_shared<small_cnn>();
  }
  if (name == "resnet") {
    return std::make_shared<small_resnet>();
  }
  throw std::invalid_argument("unknown model '" + name + "' (cnn or resnet)");
}

} // namespace gradcomp::examples
