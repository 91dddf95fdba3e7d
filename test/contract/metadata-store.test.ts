import { describe } from 'vitest'
import { DATABASES, openTestMetadataStore } from '../helpers/databases.js'
import { auditRepositoryContract } from './metadata/audit-repository.contract.js'
import { chunkRepositoryContract } from './metadata/chunk-repository.contract.js'
import { collectorRepositoryContract } from './metadata/collector-repository.contract.js'
import { journalRepositoryContract } from './metadata/journal-repository.contract.js'
import { leaseRepositoryContract } from './metadata/lease-repository.contract.js'
import { nodeRepositoryContract } from './metadata/node-repository.contract.js'
import { sessionRepositoryContract } from './metadata/session-repository.contract.js'
import { settingRepositoryContract } from './metadata/setting-repository.contract.js'
import { sharingRepositoryContract } from './metadata/sharing-repository.contract.js'
import { unitOfWorkContract } from './metadata/unit-of-work.contract.js'
import { uploadRepositoryContract } from './metadata/upload-repository.contract.js'
import { userRepositoryContract } from './metadata/user-repository.contract.js'
import { versionRepositoryContract } from './metadata/version-repository.contract.js'

/** What the metadata port promises: the unit of work, then each repository (test/contract/metadata/). */
const CONTRACTS = [
  unitOfWorkContract,
  userRepositoryContract,
  sessionRepositoryContract,
  nodeRepositoryContract,
  versionRepositoryContract,
  chunkRepositoryContract,
  collectorRepositoryContract,
  auditRepositoryContract,
  uploadRepositoryContract,
  journalRepositoryContract,
  sharingRepositoryContract,
  settingRepositoryContract,
  leaseRepositoryContract,
]

// The SQL store once per database (Kysely's own suite does the same per dialect). PostgreSQL
// is skipped only when global setup found it unreachable, and said so loudly.
for (const { name, available } of DATABASES) {
  describe.skipIf(!available)(`SqlMetadataStore on ${name}`, () => {
    for (const contract of CONTRACTS) contract(() => openTestMetadataStore(name))
  })
}
