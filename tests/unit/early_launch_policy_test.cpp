// The early-launch policy of the parts of a decode step (backend/cuda/early_launch.hpp), host-only:
// which parts launch early for a list of roles, the model's defaults, and FP4LLM_PDL=experts or
// =products. Expected values follow the documented rules, written out per case.
#include "backend/cuda/early_launch.hpp"

#include <gtest/gtest.h>

#include <optional>

namespace {

using fp4llm::cuda::early_launch_role_bit;
using fp4llm::cuda::early_launch_role_set;
using fp4llm::cuda::kEveryEarlyLaunchRole;
using fp4llm::cuda::role_launches_early;

TEST(EarlyLaunchPolicy, EachRoleHasItsOwnBitAndOtherNamesNone) {
  const unsigned qkv = early_launch_role_bit("qkv"), mlp = early_launch_role_bit("mlp"),
                 moe = early_launch_role_bit("moe"), head = early_launch_role_bit("lm_head");
  EXPECT_NE(qkv, 0u);
  EXPECT_NE(mlp, moe);
  EXPECT_EQ(qkv & mlp, 0u);
  EXPECT_EQ(early_launch_role_bit("attention"), 0u);  // governed by FP4LLM_ATTN_EARLY_BLOCKS, no role
  EXPECT_EQ(early_launch_role_bit("none"), 0u);
  EXPECT_EQ((qkv | mlp | moe | head) & ~kEveryEarlyLaunchRole, 0u);
}

TEST(EarlyLaunchPolicy, AListNamesItsRolesOnly) {
  const unsigned set = early_launch_role_set("rope,o_proj");
  EXPECT_EQ(set, early_launch_role_bit("rope") | early_launch_role_bit("o_proj"));
  EXPECT_EQ(early_launch_role_set("none"), 0u);
  EXPECT_EQ(early_launch_role_set(""), 0u);
}

TEST(EarlyLaunchPolicy, AListedSetIsExactWhateverTheDefaultsAndFp4llmPdl) {
  const unsigned qkv = early_launch_role_bit("qkv"), rope = early_launch_role_bit("rope");
  // Listed: rope only. A dense model's defaults (every role) do not add qkv; FP4LLM_PDL=experts
  // does not take rope away.
  EXPECT_TRUE(role_launches_early(rope, true, rope, false, kEveryEarlyLaunchRole));
  EXPECT_FALSE(role_launches_early(qkv, true, rope, false, kEveryEarlyLaunchRole));
  EXPECT_TRUE(role_launches_early(rope, true, rope, true, 0));
  // `none` listed: nothing early, even where every role is the default.
  EXPECT_FALSE(role_launches_early(rope, true, 0, false, kEveryEarlyLaunchRole));
}

TEST(EarlyLaunchPolicy, UnlistedTheModelsDefaultsApplyUnlessPdlAsksForExpertsOrProducts) {
  const unsigned qkv = early_launch_role_bit("qkv"), rope = early_launch_role_bit("rope"),
                 o_proj = early_launch_role_bit("o_proj"), moe = early_launch_role_bit("moe");
  const unsigned moe_model = rope | o_proj;  // Qwen3-MoE's measured default
  EXPECT_TRUE(role_launches_early(rope, false, 0, false, moe_model));
  EXPECT_TRUE(role_launches_early(o_proj, false, 0, false, moe_model));
  EXPECT_FALSE(role_launches_early(qkv, false, 0, false, moe_model));
  EXPECT_FALSE(role_launches_early(moe, false, 0, false, moe_model));
  EXPECT_TRUE(role_launches_early(qkv, false, 0, false, kEveryEarlyLaunchRole));  // dense
  EXPECT_FALSE(role_launches_early(rope, false, 0, true, moe_model));             // FP4LLM_PDL=experts
  EXPECT_FALSE(role_launches_early(qkv, false, 0, true, kEveryEarlyLaunchRole));
}

// The backend's scopes around the parts of a step nest: each sets the policy for its launches and
// gives back what the enclosing part had (outside every part: none).
TEST(EarlyLaunchPolicy, ScopesNestAndRestore) {
  using fp4llm::cuda::EarlyLaunchScope;
  using fp4llm::cuda::early_launch_in_scope;
  ASSERT_FALSE(early_launch_in_scope().has_value());
  {
    const EarlyLaunchScope outer(true);
    EXPECT_EQ(early_launch_in_scope(), std::optional<bool>(true));
    {
      const EarlyLaunchScope inner(false);
      EXPECT_EQ(early_launch_in_scope(), std::optional<bool>(false));
    }
    EXPECT_EQ(early_launch_in_scope(), std::optional<bool>(true));
  }
  EXPECT_FALSE(early_launch_in_scope().has_value());
}

}  // namespace
