import { describe } from 'vitest'
import { blobStoreContract } from '../../../test/contract/blob-store.contract.js'
import { MemoryBlobStore } from './memory-blob-store.js'

describe('MemoryBlobStore', () => blobStoreContract(async () => new MemoryBlobStore()))
