/**
 * The public libvirt API behind each REMOTE procedure number, for the error
 * a call this endpoint does not serve gets: libvirtd answers such a call
 * from its generic dispatcher, and the API entry point fails with
 * `this function is not supported by the connection driver: virXxx`.
 *
 * Generated from libvirt 9.0's remote_protocol.x: procedures 1-426 by the
 * numbers of its `REMOTE_PROC_*` enum (as the constants of Debian's go-libvirt
 * carry them; spec/rpc/procedure-names.spec.ts checks every one against
 * them), 427-443 the procedures libvirt added up to 9.0, in the enum's
 * order. Each name is the procedure's name in libvirt's camel case, spelt as
 * libvirt.so 9.0 exports the function (`DOMAIN_GET_XML_DESC` is
 * virDomainGetXMLDesc, `DOMAIN_FD_ASSOCIATE` virDomainFDAssociate). `-`
 * marks what is no API call: authentication steps and the server's event
 * messages.
 */

/** Names without their `vir` prefix, index = procedure number. */
const NAMES = (
  '- ConnectOpen ConnectClose ConnectGetType ConnectGetVersion ConnectGetMaxVcpus NodeGetInfo ' +
  'ConnectGetCapabilities DomainAttachDevice DomainCreate DomainCreateXML DomainDefineXML DomainDestroy ' +
  'DomainDetachDevice DomainGetXMLDesc DomainGetAutostart DomainGetInfo DomainGetMaxMemory DomainGetMaxVcpus ' +
  'DomainGetOSType DomainGetVcpus ConnectListDefinedDomains DomainLookupByID DomainLookupByName ' +
  'DomainLookupByUUID ConnectNumOfDefinedDomains DomainPinVcpu DomainReboot DomainResume DomainSetAutostart ' +
  'DomainSetMaxMemory DomainSetMemory DomainSetVcpus DomainShutdown DomainSuspend DomainUndefine ' +
  'ConnectListDefinedNetworks ConnectListDomains ConnectListNetworks NetworkCreate NetworkCreateXML ' +
  'NetworkDefineXML NetworkDestroy NetworkGetXMLDesc NetworkGetAutostart NetworkGetBridgeName NetworkLookupByName ' +
  'NetworkLookupByUUID NetworkSetAutostart NetworkUndefine ConnectNumOfDefinedNetworks ConnectNumOfDomains ' +
  'ConnectNumOfNetworks DomainCoreDump DomainRestore DomainSave DomainGetSchedulerType ' +
  'DomainGetSchedulerParameters DomainSetSchedulerParameters ConnectGetHostname ConnectSupportsFeature ' +
  'DomainMigratePrepare DomainMigratePerform DomainMigrateFinish DomainBlockStats DomainInterfaceStats - - - - - ' +
  'ConnectNumOfStoragePools ConnectListStoragePools ConnectNumOfDefinedStoragePools ' +
  'ConnectListDefinedStoragePools ConnectFindStoragePoolSources StoragePoolCreateXML StoragePoolDefineXML ' +
  'StoragePoolCreate StoragePoolBuild StoragePoolDestroy StoragePoolDelete StoragePoolUndefine StoragePoolRefresh ' +
  'StoragePoolLookupByName StoragePoolLookupByUUID StoragePoolLookupByVolume StoragePoolGetInfo ' +
  'StoragePoolGetXMLDesc StoragePoolGetAutostart StoragePoolSetAutostart StoragePoolNumOfVolumes ' +
  'StoragePoolListVolumes StorageVolCreateXML StorageVolDelete StorageVolLookupByName StorageVolLookupByKey ' +
  'StorageVolLookupByPath StorageVolGetInfo StorageVolGetXMLDesc StorageVolGetPath NodeGetCellsFreeMemory ' +
  'NodeGetFreeMemory DomainBlockPeek DomainMemoryPeek ConnectDomainEventRegister ConnectDomainEventDeregister - ' +
  'DomainMigratePrepare2 DomainMigrateFinish2 ConnectGetURI NodeNumOfDevices NodeListDevices ' +
  'NodeDeviceLookupByName NodeDeviceGetXMLDesc NodeDeviceGetParent NodeDeviceNumOfCaps NodeDeviceListCaps ' +
  'NodeDeviceDettach NodeDeviceReAttach NodeDeviceReset DomainGetSecurityLabel NodeGetSecurityModel ' +
  'NodeDeviceCreateXML NodeDeviceDestroy StorageVolCreateXMLFrom ConnectNumOfInterfaces ConnectListInterfaces ' +
  'InterfaceLookupByName InterfaceLookupByMACString InterfaceGetXMLDesc InterfaceDefineXML InterfaceUndefine ' +
  'InterfaceCreate InterfaceDestroy ConnectDomainXMLFromNative ConnectDomainXMLToNative ' +
  'ConnectNumOfDefinedInterfaces ConnectListDefinedInterfaces ConnectNumOfSecrets ConnectListSecrets ' +
  'SecretLookupByUUID SecretDefineXML SecretGetXMLDesc SecretSetValue SecretGetValue SecretUndefine ' +
  'SecretLookupByUsage DomainMigratePrepareTunnel ConnectIsSecure DomainIsActive DomainIsPersistent ' +
  'NetworkIsActive NetworkIsPersistent StoragePoolIsActive StoragePoolIsPersistent InterfaceIsActive ' +
  'ConnectGetLibVersion ConnectCompareCPU DomainMemoryStats DomainAttachDeviceFlags DomainDetachDeviceFlags ' +
  'ConnectBaselineCPU DomainGetJobInfo DomainAbortJob StorageVolWipe DomainMigrateSetMaxDowntime ' +
  'ConnectDomainEventRegisterAny ConnectDomainEventDeregisterAny - - - - - DomainUpdateDeviceFlags ' +
  'NWFilterLookupByName NWFilterLookupByUUID NWFilterGetXMLDesc ConnectNumOfNWFilters ConnectListNWFilters ' +
  'NWFilterDefineXML NWFilterUndefine DomainManagedSave DomainHasManagedSaveImage DomainManagedSaveRemove ' +
  'DomainSnapshotCreateXML DomainSnapshotGetXMLDesc DomainSnapshotNum DomainSnapshotListNames ' +
  'DomainSnapshotLookupByName DomainHasCurrentSnapshot DomainSnapshotCurrent DomainRevertToSnapshot ' +
  'DomainSnapshotDelete DomainGetBlockInfo - DomainCreateWithFlags DomainSetMemoryParameters ' +
  'DomainGetMemoryParameters DomainSetVcpusFlags DomainGetVcpusFlags DomainOpenConsole DomainIsUpdated ' +
  'ConnectGetSysinfo DomainSetMemoryFlags DomainSetBlkioParameters DomainGetBlkioParameters ' +
  'DomainMigrateSetMaxSpeed StorageVolUpload StorageVolDownload DomainInjectNMI DomainScreenshot DomainGetState ' +
  'DomainMigrateBegin3 DomainMigratePrepare3 DomainMigratePrepareTunnel3 DomainMigratePerform3 ' +
  'DomainMigrateFinish3 DomainMigrateConfirm3 DomainSetSchedulerParametersFlags InterfaceChangeBegin ' +
  'InterfaceChangeCommit InterfaceChangeRollback DomainGetSchedulerParametersFlags - DomainPinVcpuFlags ' +
  'DomainSendKey NodeGetCPUStats NodeGetMemoryStats DomainGetControlInfo DomainGetVcpuPinInfo DomainUndefineFlags ' +
  'DomainSaveFlags DomainRestoreFlags DomainDestroyFlags DomainSaveImageGetXMLDesc DomainSaveImageDefineXML ' +
  'DomainBlockJobAbort DomainGetBlockJobInfo DomainBlockJobSetSpeed DomainBlockPull - DomainMigrateGetMaxSpeed ' +
  'DomainBlockStatsFlags DomainSnapshotGetParent DomainReset DomainSnapshotNumChildren ' +
  'DomainSnapshotListChildrenNames - DomainOpenGraphics NodeSuspendForDuration DomainBlockResize ' +
  'DomainSetBlockIoTune DomainGetBlockIoTune DomainSetNumaParameters DomainGetNumaParameters ' +
  'DomainSetInterfaceParameters DomainGetInterfaceParameters DomainShutdownFlags StorageVolWipePattern ' +
  'StorageVolResize DomainPMSuspendForDuration DomainGetCPUStats DomainGetDiskErrors DomainSetMetadata ' +
  'DomainGetMetadata DomainBlockRebase DomainPMWakeup - - - DomainSnapshotIsCurrent DomainSnapshotHasMetadata ' +
  'ConnectListAllDomains DomainListAllSnapshots DomainSnapshotListAllChildren - DomainGetHostname ' +
  'DomainGetSecurityLabelList DomainPinEmulator DomainGetEmulatorPinInfo ConnectListAllStoragePools ' +
  'StoragePoolListAllVolumes ConnectListAllNetworks ConnectListAllInterfaces ConnectListAllNodeDevices ' +
  'ConnectListAllNWFilters ConnectListAllSecrets NodeSetMemoryParameters NodeGetMemoryParameters ' +
  'DomainBlockCommit NetworkUpdate - NodeGetCPUMap DomainFSTrim DomainSendProcessSignal DomainOpenChannel ' +
  'NodeDeviceLookupSCSIHostByWWN DomainGetJobStats DomainMigrateGetCompressionCache ' +
  'DomainMigrateSetCompressionCache NodeDeviceDetachFlags DomainMigrateBegin3Params DomainMigratePrepare3Params ' +
  'DomainMigratePrepareTunnel3Params DomainMigratePerform3Params DomainMigrateFinish3Params ' +
  'DomainMigrateConfirm3Params DomainSetMemoryStatsPeriod DomainCreateXMLWithFiles DomainCreateWithFiles - ' +
  'ConnectGetCPUModelNames ConnectNetworkEventRegisterAny ConnectNetworkEventDeregisterAny - ' +
  'ConnectDomainEventRegisterAny ConnectDomainEventDeregisterAny - - - - - - - - - - - - - - - - ' +
  'DomainCoreDumpWithFormat DomainFSFreeze DomainFSThaw DomainGetTime DomainSetTime - NodeGetFreePages ' +
  'NetworkGetDHCPLeases ConnectGetDomainCapabilities DomainOpenGraphicsFD ConnectGetAllDomainStats ' +
  'DomainBlockCopy - NodeAllocPages - DomainGetFSInfo DomainDefineXMLFlags DomainGetIOThreadInfo ' +
  'DomainPinIOThread DomainInterfaceAddresses - DomainAddIOThread DomainDelIOThread DomainSetUserPassword ' +
  'DomainRename - ConnectRegisterCloseCallback ConnectUnregisterCloseCallback - - DomainMigrateStartPostCopy ' +
  'DomainGetPerfEvents DomainSetPerfEvents - ConnectStoragePoolEventRegisterAny ' +
  'ConnectStoragePoolEventDeregisterAny - DomainGetGuestVcpus DomainSetGuestVcpus - ' +
  'ConnectNodeDeviceEventRegisterAny ConnectNodeDeviceEventDeregisterAny - - StorageVolGetInfoFlags - ' +
  'ConnectSecretEventRegisterAny ConnectSecretEventDeregisterAny - - DomainSetVcpu - DomainSetBlockThreshold ' +
  'DomainMigrateGetMaxDowntime DomainManagedSaveGetXMLDesc DomainManagedSaveDefineXML DomainSetLifecycleAction ' +
  'StoragePoolLookupByTargetPath DomainDetachDeviceAlias ConnectCompareHypervisorCPU ConnectBaselineHypervisorCPU ' +
  'NodeGetSEVInfo DomainGetLaunchSecurityInfo NWFilterBindingLookupByPortDev NWFilterBindingGetXMLDesc ' +
  'NWFilterBindingCreateXML NWFilterBindingDelete ConnectListAllNWFilterBindings DomainSetIOThreadParams ' +
  'ConnectGetStoragePoolCapabilities NetworkListAllPorts NetworkPortLookupByUUID NetworkPortCreateXML ' +
  'NetworkPortGetParameters NetworkPortSetParameters NetworkPortGetXMLDesc NetworkPortDelete ' +
  'DomainCheckpointCreateXML DomainCheckpointGetXMLDesc DomainListAllCheckpoints DomainCheckpointListAllChildren ' +
  'DomainCheckpointLookupByName DomainCheckpointGetParent DomainCheckpointDelete DomainGetGuestInfo ' +
  'ConnectSetIdentity DomainAgentSetResponseTimeout DomainBackupBegin DomainBackupGetXMLDesc - ' +
  'DomainAuthorizedSSHKeysGet DomainAuthorizedSSHKeysSet DomainGetMessages DomainStartDirtyRateCalc ' +
  'NodeDeviceDefineXML NodeDeviceUndefine NodeDeviceCreate NWFilterDefineXMLFlags NetworkDefineXMLFlags ' +
  'NodeDeviceGetAutostart NodeDeviceSetAutostart NodeDeviceIsPersistent NodeDeviceIsActive NetworkCreateXMLFlags ' +
  '- DomainSetLaunchSecurityState DomainSaveParams DomainRestoreParams DomainAbortJobFlags DomainFDAssociate'
).split(' ');

/** The highest REMOTE procedure number libvirt 9.0 defines. */
export const LAST_REMOTE_PROCEDURE = NAMES.length - 1;

/** The API name of REMOTE procedure `proc` (e.g. 337 → `virDomainGetTime`), or undefined when it is no API call or unknown. */
export function remoteApiName(proc: number): string | undefined {
  const name = NAMES[proc];
  return name === undefined || name === '-' ? undefined : `vir${name}`;
}
