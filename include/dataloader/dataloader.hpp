// Everything a user of asio-dataloader's loader needs.
#pragma once

#include "dataloader/diagnostics.hpp"
#include "dataloader/error.hpp"
#include "dataloader/loader/batch_completion.hpp"
#include "dataloader/loader/loader.hpp"
#include "dataloader/loader/options.hpp"
#include "dataloader/loader/registry.hpp"
#include "dataloader/result.hpp"
#include "dataloader/loader/stats.hpp"
