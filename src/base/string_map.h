// std::unordered_map keyed by std::string that a std::string_view finds without building a
// std::string (C++20 heterogeneous lookup): the hot path looks users up by views into a
// parsed message, and a temporary key per lookup was an allocation each.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace base {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace base
