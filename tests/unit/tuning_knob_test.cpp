// The environment knobs' readers: a flag's three states (set to 1, set to anything else, unset),
// and the named values `fp4llm bench` accepts for the knobs that have them.
#include "util/tuning_knob.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace {

constexpr const char* kName = "FP4LLM_UNIT_TEST_KNOB";

TEST(TuningKnob, AFlagIsItsFallbackOnlyWhenUnset) {
  unsetenv(kName);
  EXPECT_TRUE(fp4llm::knob_flag(kName, true));
  EXPECT_FALSE(fp4llm::knob_flag(kName, false));
  setenv(kName, "1", 1);
  EXPECT_TRUE(fp4llm::knob_flag(kName, false));
  setenv(kName, "0", 1);
  EXPECT_FALSE(fp4llm::knob_flag(kName, true));
  setenv(kName, "qkv", 1);  // a named value is not "on" for a plain flag
  EXPECT_FALSE(fp4llm::knob_flag(kName, true));
  unsetenv(kName);
}

TEST(TuningKnob, NamedValuesAreKnownOnlyWhereCodeSelectsOnThem) {
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_NORM_PROLOGUE", "qkv"));
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_NORM_PROLOGUE", "0"));
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_NORM_PROLOGUE", "2"));
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_FLASH_STAGGER", "1"));
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_FLASH_LONGEST_FIRST", "on"));  // only 1 selects it
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_PDL", "experts"));
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_GEMV_KERNEL", "tiled"));  // removed after measurement
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_GEMV_MIN_CHUNKS", "4"));  // integer knobs take any value
}

TEST(TuningKnob, AListOfRolesIsKnownOnlyWhenEveryRoleIs) {
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", "o_proj"));
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", "qkv,rope,o_proj,mlp,moe,lm_head"));
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", "o_proj,attention"));  // the attention is no role
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", "rope,"));             // an empty role
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_L2_AHEAD", "qkv,o_proj"));
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_L2_AHEAD", "down,gate_up,qkv_own"));
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_L2_AHEAD", "qkv,router"));  // no such part
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_L2_AHEAD", ""));
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_L2_AHEAD", "none"));
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", ""));
  EXPECT_TRUE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", "none"));              // no role early
  EXPECT_FALSE(fp4llm::knob_value_known("FP4LLM_PDL_ROLES", "none,rope"));
}

TEST(TuningKnob, TextIsEmptyWhenUnset) {
  unsetenv(kName);
  EXPECT_TRUE(fp4llm::knob_text(kName).empty());
  setenv(kName, "qkv,rope", 1);
  EXPECT_EQ(fp4llm::knob_text(kName), "qkv,rope");
  unsetenv(kName);
}

TEST(TuningKnob, APairIsTwoNumbersOrRefused) {
  unsetenv(kName);
  EXPECT_EQ(fp4llm::knob_pair(kName, {5, 4}), std::make_pair(5, 4));
  setenv(kName, "3,1", 1);
  EXPECT_EQ(fp4llm::knob_pair(kName, {5, 4}), std::make_pair(3, 1));
  for (const char* bad : {"3", "3,", "3,1,2", "3;1", "a,b", "3,1x"}) {
    setenv(kName, bad, 1);
    EXPECT_THROW(fp4llm::knob_pair(kName, {5, 4}), std::invalid_argument) << bad;
  }
  unsetenv(kName);
}

}  // namespace
