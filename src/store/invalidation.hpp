// The payload of a dataloader_invalidate notification (raised by the triggers of
// migrations 4 and 5, migrations.cpp; README "Cache coherence"):
//   {"table" : "memories", "users" : ["user1","user2"]}    some users changed
//   {"table" : "memories", "all" : true}                    any user may have changed
// Anything else is read as "all": a payload this version does not understand must not
// leave a stale entry behind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dataloader::store::detail {

struct invalidation {
  bool all = false;
  std::vector<std::string> users;
};

invalidation parse_invalidation(std::string_view payload);

}  // namespace dataloader::store::detail
