// Whether a socket has input waiting now. Asio's epoll reactor is edge-triggered: a wait
// armed after libpq left bytes in the socket would not wake, so look before waiting.
#pragma once

#include <poll.h>

namespace dataloader::pg::detail {

inline bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP));
}

}  // namespace dataloader::pg::detail
