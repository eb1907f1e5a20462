#include "engine/job_settings.h"

#include <string>

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_utils.h"

namespace promptsweep {
namespace {

using test::ErrorOf;

// The trainer option registry: names, parsing, errors naming where.
TEST(JobSettingsTest, TrainerOptionsParseAndNameTheirErrors) {
  TrainerConfig config;
  EXPECT_NE(ErrorOf([&] { SetTrainerOption(config, "lerning_rate", "0.1", "job.yaml:3:1"); })
                .find("job.yaml:3:1: unknown setting 'lerning_rate' (known: num_virtual_tokens"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { SetTrainerOption(config, "max-steps", "ten", "--max-steps"); })
                .find("--max-steps: max_steps: expected an integer, got 'ten'"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { SetTrainerOption(config, "optimizer", "sgd", "x"); }).find("adamw, adafactor"),
            std::string::npos);
  SetTrainerOption(config, "learning-rate", "0.25", "flag");
  EXPECT_EQ(config.learning_rate, 0.25);
  for (const TrainerOption& option : TrainerOptions()) {  // every option reads back what it set
    TrainerConfig copy = config;
    EXPECT_NO_THROW(option.set(copy, option.get(config))) << option.name;
    EXPECT_EQ(option.get(copy), option.get(config)) << option.name;
  }

}

}  // namespace
}  // namespace promptsweep
